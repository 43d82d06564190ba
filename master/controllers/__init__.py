"""Controllers: loops that drive the cluster's actual state towards the declared one.

Each controller is a pure decision ("given what is stored, what must change?") with a
thin loop around it fed by store watches, run as a named root task of the master.
"""
