"""The `tradebot` command line."""


def main() -> None:
    print("tradebot")
