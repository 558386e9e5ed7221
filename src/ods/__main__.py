from ods.cli import main

raise SystemExit(main())
