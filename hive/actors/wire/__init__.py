"""The transport and what keeps its frames safe across restarts: admission before replay, the
sequence reservation, the saved replay guard."""
