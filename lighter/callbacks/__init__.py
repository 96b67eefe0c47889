"""Callbacks for `trainer::callbacks`: freeze parameters, write predictions to files or a table, log every batch,
show progress."""

from lighter.callbacks.batch_log import BatchLog
from lighter.callbacks.file_writer import FileWriter
from lighter.callbacks.freezer import Freezer
from lighter.callbacks.progress import ProgressBar, ProgressLog, RichProgressBar
from lighter.callbacks.table_writer import TableWriter
from lighter.callbacks.writer import SampleWriter

__all__ = [
    "BatchLog",
    "FileWriter",
    "Freezer",
    "ProgressBar",
    "ProgressLog",
    "RichProgressBar",
    "SampleWriter",
    "TableWriter",
]
