"""The benchmark (bench/README.md); bench/run.py is its command line."""
