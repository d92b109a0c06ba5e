from pbt.cli.main import main

main()
