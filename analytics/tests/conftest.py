from charging.tests.conftest import connector, pile, station  # noqa: F401
