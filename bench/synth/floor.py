"""The floor for a synth: import the AWS provider bindings and synthesize one resource, nothing else."""

import sys

from cdktf import App, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket

app = App(outdir=sys.argv[1])
stack = TerraformStack(app, "floor")
AwsProvider(stack, "aws", region="eu-west-1")
S3Bucket(stack, "bucket", bucket="floor-bucket")
app.synth()
