from bgcam.cli import main

main()
