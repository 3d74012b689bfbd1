from aggregator.launch import main

main()
