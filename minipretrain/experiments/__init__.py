"""The four research questions of minipretrain, one module each (plus shared fitting helpers)."""
