"""``python -m hive.cln``: the file lightningd runs as the hive plugin."""

from hive.cln.plugin import main

if __name__ == "__main__":
    main()
