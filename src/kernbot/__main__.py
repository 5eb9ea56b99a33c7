from kernbot.cli import main

raise SystemExit(main())
