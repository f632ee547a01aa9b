from comfy_multi.cli import main

main()
