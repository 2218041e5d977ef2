"""The backtester: the live strategy and risk code run over historical bars, behind a simulated
broker (`broker.py`), with the result as numbers (`metrics.py`) and files (`report.py`)."""
