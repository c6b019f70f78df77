"""Flush denormal floats before any torch work in this process.

The setting is per thread and inherited only by threads started later, OpenMP's workers
included; the library sets it when a job starts, which covers a fresh worker thread or a command
line run, but here earlier tests may already have started the main thread's workers.
"""

import torch

torch.set_flush_denormal(True)
