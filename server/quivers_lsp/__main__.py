from quivers_lsp.server import main

main()
