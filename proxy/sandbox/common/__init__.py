"""Parts every vendor sandbox shares: injected faults, the request log, rate windows."""
