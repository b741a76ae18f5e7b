from sipbridge.cli import main

raise SystemExit(main())
