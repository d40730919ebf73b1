#include "services/gateway/gateway_service.h"

#include "absl/strings/str_cat.h"
#include "services/common/status_mapping.h"
#include "services/gateway/generate_call.h"

namespace blockserve::services {

void GatewayService::FinishUnary(grpc::ServerUnaryReactor* reactor, absl::string_view method,
                                 const absl::Status& status) {
  gateway_->metrics->CountRequest(method, status.ok() ? "ok" : "error",
                                  StatusCodeName(status.code()));
  reactor->Finish(ToGrpcStatus(status));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* GatewayService::Generate(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return StartGenerateCall(*gateway_, context, request);
}

grpc::ServerUnaryReactor* GatewayService::Tokenize(grpc::CallbackServerContext* context,
                                                   const v1::TokenizeRequest* request,
                                                   v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (gateway_->state->draining()) {
    FinishUnary(reactor, "Tokenize", ServingState::DrainingError());
  } else if (gateway_->tokenizer == nullptr) {
    FinishUnary(reactor, "Tokenize",
                absl::FailedPreconditionError("this gateway has no tokenizer"));
  } else if (request->text().size() > gateway_->limits.max_prompt_bytes) {
    FinishUnary(reactor, "Tokenize",
                absl::InvalidArgumentError(absl::StrCat("text is ", request->text().size(),
                                                        " bytes, more than the limit of ",
                                                        gateway_->limits.max_prompt_bytes)));
  } else {
    gateway_->pool->Post([this, reactor, request, response] {
      absl::StatusOr<std::vector<int32_t>> ids = gateway_->tokenizer->Encode(
          request->text(), {.add_special_tokens = false, .parse_special_tokens = false});
      if (ids.ok()) response->mutable_token_ids()->Assign(ids->begin(), ids->end());
      FinishUnary(reactor, "Tokenize", ids.status());
    });
  }
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::Detokenize(grpc::CallbackServerContext* context,
                                                     const v1::DetokenizeRequest* request,
                                                     v1::DetokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (gateway_->state->draining()) {
    FinishUnary(reactor, "Detokenize", ServingState::DrainingError());
  } else if (gateway_->tokenizer == nullptr) {
    FinishUnary(reactor, "Detokenize",
                absl::FailedPreconditionError("this gateway has no tokenizer"));
  } else {
    gateway_->pool->Post([this, reactor, request, response] {
      absl::StatusOr<std::string> text = gateway_->tokenizer->Decode(
          absl::MakeConstSpan(request->token_ids().data(), request->token_ids().size()),
          request->skip_special_tokens());
      if (text.ok()) response->set_text(*std::move(text));
      FinishUnary(reactor, "Detokenize", text.status());
    });
  }
  return reactor;
}

grpc::ServerUnaryReactor* GatewayService::GetModelInfo(grpc::CallbackServerContext* context,
                                                       const v1::GetModelInfoRequest* request,
                                                       v1::GetModelInfoResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<v1::ModelInfo> model = gateway_->router->model();
  if (!model.has_value()) {
    FinishUnary(reactor, "GetModelInfo",
                absl::UnavailableError("the gateway has not reached a context service yet"));
    return reactor;
  }
  *response->mutable_model() = *model;
  response->set_has_tokenizer(gateway_->tokenizer != nullptr);
  response->set_tokenizer_vocab_size(gateway_->tokenizer ? gateway_->tokenizer->vocab_size() : 0);
  response->set_default_max_new_tokens(gateway_->limits.default_max_new_tokens);
  response->set_max_new_tokens_limit(gateway_->limits.max_new_tokens_limit);
  response->set_context_replicas(gateway_->router->size());
  FinishUnary(reactor, "GetModelInfo", absl::OkStatus());
  return reactor;
}

}  // namespace blockserve::services
