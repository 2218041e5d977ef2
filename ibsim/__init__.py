"""ibsim: a simulated IB Gateway speaking the TWS socket protocol."""
