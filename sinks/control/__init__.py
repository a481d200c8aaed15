"""`sflowpipe control`: measurement-based control (block on a threshold event, release when the
flow is gone). See service.py; the state machine is state.py, the actions actions.py."""
