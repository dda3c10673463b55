"""T/CEC 102-2016 (platform interconnection): conversions of the domain's data."""
