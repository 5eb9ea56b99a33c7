{{- define "kernbot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kernbot.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kernbot.labels" -}}
app.kubernetes.io/name: {{ include "kernbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kernbot.selector" -}}
app.kubernetes.io/name: {{ include "kernbot.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kernbot.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kernbot.tokenSecretName" -}}
{{- if .Values.existingTokenSecret -}}
{{ .Values.existingTokenSecret }}
{{- else -}}
{{ include "kernbot.fullname" . }}-token
{{- end -}}
{{- end -}}

{{- define "kernbot.tokenSecretKey" -}}
{{- if .Values.existingTokenSecret -}}
{{ .Values.existingTokenSecretKey }}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{- define "kernbot.slackSecretName" -}}
{{- if .Values.slack.existingSecret -}}
{{ .Values.slack.existingSecret }}
{{- else -}}
{{ include "kernbot.fullname" . }}-slack
{{- end -}}
{{- end -}}

{{- define "kernbot.slackEnabled" -}}
{{- if or .Values.slack.existingSecret .Values.slack.botToken -}}true{{- end -}}
{{- end -}}

{{- define "kernbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ include "kernbot.fullname" . }}
{{- else -}}
default
{{- end -}}
{{- end -}}
