"""Export: ONNX graphs of trained runs (fp32 and static int8), each checked against its source.

Example:
    >>> # from imgrec.export import export_run
    >>> # report = export_run("runs/resnet18-1", int8=True)
    >>> # [f.path.name for f in report.files]   # ['model.onnx', 'model.int8.onnx']
"""

from imgrec.export.api import ExportedFile, ExportReport, check_exports, export_run
from imgrec.export.parity import Parity, compare

__all__ = ["ExportReport", "ExportedFile", "Parity", "check_exports", "compare", "export_run"]
