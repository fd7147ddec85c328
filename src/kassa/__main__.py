from kassa.cli import main

main()
