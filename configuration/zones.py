"""The availability zones of each AWS region, by name, so a zone that does not exist is refused at synth instead of
failing mid-apply.

A dated table rather than a call to `ec2:DescribeAvailabilityZones`: synth runs without credentials. Zone letters
are the same for every account in these regions except us-west-1 (an account sees two of the three letters; the
table lists all three). A region missing here is checked by the shape of its zone names only; add it when AWS opens
one (the README says how to see a region's zones).
"""

from __future__ import annotations

ZONES_AS_OF = "2025-11"

ZONE_LETTERS: dict[str, str] = {
    "us-east-1": "abcdef", "us-east-2": "abc", "us-west-1": "abc", "us-west-2": "abcd",
    "ca-central-1": "abd", "ca-west-1": "abc", "mx-central-1": "abc", "sa-east-1": "abc",
    "eu-west-1": "abc", "eu-west-2": "abc", "eu-west-3": "abc", "eu-central-1": "abc", "eu-central-2": "abc",
    "eu-north-1": "abc", "eu-south-1": "abc", "eu-south-2": "abc",
    "ap-northeast-1": "acd", "ap-northeast-2": "abcd", "ap-northeast-3": "abc", "ap-east-1": "abc",
    "ap-east-2": "abc", "ap-south-1": "abc", "ap-south-2": "abc", "ap-southeast-1": "abc", "ap-southeast-2": "abc",
    "ap-southeast-3": "abc", "ap-southeast-4": "abc", "ap-southeast-5": "abc", "ap-southeast-7": "abc",
    "me-south-1": "abc", "me-central-1": "abc", "il-central-1": "abc", "af-south-1": "abc",
    "us-gov-west-1": "abc", "us-gov-east-1": "abc", "cn-north-1": "abd", "cn-northwest-1": "abc",
}


def region_zones(region: str) -> list[str] | None:
    """The region's zone names in letter order, or None for a region the table does not know."""
    letters = ZONE_LETTERS.get(region)
    return None if letters is None else [f"{region}{letter}" for letter in letters]
