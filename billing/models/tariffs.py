"""Tariffs, tariff versions and their assignment to stations and piles."""
