from tollgate.cli.app import main

main()
