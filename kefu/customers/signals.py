from django.dispatch import Signal

# Sent inside the merge transaction with target= and duplicate= (Customer instances), so other
# apps (tickets, conversations...) move their rows to the surviving customer.
customer_merged = Signal()
