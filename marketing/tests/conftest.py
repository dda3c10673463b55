"""Marketing tests reuse charging's station, DC pile, flat tariff (1.0 + 0.5 yuan/kWh) and
funded member."""

from charging.tests.conftest import connector, funded_member, pile, station, tariff  # noqa: F401
