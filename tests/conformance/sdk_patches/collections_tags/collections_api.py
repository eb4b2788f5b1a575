# Test-only reconstruction of decentro_in_collections_client/apis/tags/collections_api.py,
# missing from the decentro-in-collections-python-sdk 1.0.0 wheel (see ../README.md): the
# public operation classes in one API class, whose ``raw`` attribute (which every public
# method calls) is the same operations answering the SDK's raw ApiResponse.
import typing

from decentro_in_collections_client.api_client import ApiClient
from decentro_in_collections_client.paths.v2_payments_collection.post import IssueCollectRequest, IssueCollectRequestRaw
from decentro_in_collections_client.paths.v2_payments_transaction_transaction_id_status.get import (
    GetTransactionStatus,
    GetTransactionStatusRaw,
)
from decentro_in_collections_client.paths.v2_payments_upi_link.post import GeneratePaymentLink, GeneratePaymentLinkRaw
from decentro_in_collections_client.paths.v2_payments_upi_refund.post import IssueUpiRefund, IssueUpiRefundRaw
from decentro_in_collections_client.paths.v2_payments_vpa_validate.post import ValidateUpiHandle, ValidateUpiHandleRaw


class CollectionsApiRaw(
    GeneratePaymentLinkRaw,
    GetTransactionStatusRaw,
    IssueCollectRequestRaw,
    IssueUpiRefundRaw,
    ValidateUpiHandleRaw,
):
    pass


class CollectionsApi(
    GeneratePaymentLink,
    GetTransactionStatus,
    IssueCollectRequest,
    IssueUpiRefund,
    ValidateUpiHandle,
):
    def __init__(self, api_client: typing.Optional[ApiClient] = None):
        super().__init__(api_client)
        self.raw = CollectionsApiRaw(self.api_client)
