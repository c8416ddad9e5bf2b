"""Entry point of the `policyctl` console script and of `python -m policyctl`."""

from policyctl.cli import main

if __name__ == "__main__":
    main()
