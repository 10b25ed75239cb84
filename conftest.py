pytest_plugins = [
    "kefu.accounts.tests.fixtures",
    "kefu.customers.tests.fixtures",
    "kefu.notifications.tests.fixtures",
    "kefu.tickets.tests.fixtures",
]
