"""My providers: the customer's own record of every provider they dealt with."""
