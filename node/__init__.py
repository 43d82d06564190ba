"""The bramble node agent (the kubelet of a Pi): arrives with the node-agent issue."""
