from tollgate.cli.start import main

main()
