"""modules/certificate.py: an ACM certificate for a domain and its direct subdomains, validated through Route 53."""

from __future__ import annotations

from modules.certificate import DnsValidatedCertificate, DnsValidatedCertificateProps
from tests.infra.synth import only, ref
from tests.support.construct_synth import synth_stack


def test_certificate_covers_the_domain_and_its_subdomains_and_waits_for_validation():
    stack = synth_stack(lambda s: DnsValidatedCertificate(s, "certificate", DnsValidatedCertificateProps(
        domain_name="ml.example.com", hosted_zone_id="Z123")))
    certificate_id, certificate = only(stack, "aws_acm_certificate")
    assert certificate["domain_name"] == "ml.example.com"
    assert certificate["subject_alternative_names"] == ["*.ml.example.com"]
    assert certificate["validation_method"] == "DNS"
    assert certificate["lifecycle"] == {"create_before_destroy": True}
    record_id, record = only(stack, "aws_route53_record")
    assert record["zone_id"] == "Z123" and record["allow_overwrite"] is True and record["ttl"] == 300
    assert "domain_validation_options" in record["for_each"]
    _, validation = only(stack, "aws_acm_certificate_validation")
    assert validation["certificate_arn"] == ref("aws_acm_certificate", certificate_id, "arn")
    assert validation["depends_on"] == [f"aws_route53_record.{record_id}"]
