from cctv_gov.cli import main

main()
