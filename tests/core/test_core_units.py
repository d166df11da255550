import pytest

from openir.core import InputError, to_canonical


@pytest.mark.parametrize(
    ("value", "unit", "quantity", "expected"),
    [
        (1.0, "Gym2", "Gy·cm²", 1e4),
        (2.5, "Gy·m²", "Gy·cm²", 2.5e4),
        (30.0, "dGy*cm2", "Gy·cm²", 3.0),
        (1200.0, "mGy", "Gy", 1.2),
        (55.0, "mGycm", "mGy·cm", 55.0),
        (2.0, "min", "s", 120.0),
    ],
)
def test_vendor_spellings(value, unit, quantity, expected):
    assert to_canonical(value, unit, quantity) == pytest.approx(expected)


def test_unknown_unit_is_an_error_not_a_guess():
    with pytest.raises(InputError, match="unknown unit 'furlong'"):
        to_canonical(1.0, "furlong", "mm")
