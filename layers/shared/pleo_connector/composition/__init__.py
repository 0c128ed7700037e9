"""The composition root: the only package that knows the concrete collaborators.

It sits above every service package. `roots` builds each function's collaborators from that
function's own settings model; `http` is the Powertools glue the page handlers share (one error
mapping, the session and form readers). Services never import from here.
"""
