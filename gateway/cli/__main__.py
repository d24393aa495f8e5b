from turnroute.gateway.cli.main import main

raise SystemExit(main())
