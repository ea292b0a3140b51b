"""`python -m relayaudit` is the same as the `relayaudit` console script."""

from relayaudit.cli import main

if __name__ == "__main__":
    main()
