from segdil.cli import main

main()
