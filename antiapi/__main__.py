from antiapi.cli import main

raise SystemExit(main())
