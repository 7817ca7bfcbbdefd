"""An ACM certificate for a domain and its direct subdomains, DNS-validated in a Route 53 zone."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformIterator, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate
from cdktf_cdktf_provider_aws.acm_certificate_validation import AcmCertificateValidation
from cdktf_cdktf_provider_aws.route53_record import Route53Record
from constructs import Construct


@dataclass(frozen=True)
class DnsValidatedCertificateProps:
    domain_name: str
    hosted_zone_id: str


class DnsValidatedCertificate(Construct):
    """Attributes: `arn` (of the validated certificate: listeners using it wait for validation)."""

    def __init__(self, scope: Construct, construct_id: str, props: DnsValidatedCertificateProps):
        super().__init__(scope, construct_id)
        certificate = AcmCertificate(
            self, "certificate", domain_name=props.domain_name,
            subject_alternative_names=[f"*.{props.domain_name}"], validation_method="DNS",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True))
        options = TerraformIterator.from_complex_list(certificate.domain_validation_options, "domain_name")
        # The apex and the wildcard share one validation record, hence allow_overwrite.
        records = Route53Record(
            self, "validation-record", for_each=options, zone_id=props.hosted_zone_id,
            name=options.get_string("resource_record_name"), type=options.get_string("resource_record_type"),
            records=[options.get_string("resource_record_value")], ttl=300, allow_overwrite=True)
        validation = AcmCertificateValidation(self, "validation", certificate_arn=certificate.arn,
                                              depends_on=[records])
        self.arn: str = validation.certificate_arn
