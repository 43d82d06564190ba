from bramble.cli.main import main

main()
