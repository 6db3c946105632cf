// Calls the lumen gateway from C++: sentence embeddings (EmbeddingService.Embed,
// forwarded by the gateway) and the merged model list (GatewayService.ListModels,
// a fan-out to every backend).
//
//   lumen-client [--address HOST:PORT] [--json] TEXT...
//
// The address defaults to $LUMEN_ADDRESS or localhost:50051; an API key in
// $LUMEN_API_KEY is sent as "x-api-key". --json prints one JSON object for
// scripts and tests: {"embed": EmbedResponse, "vectors": decoded vectors,
// "models": ListModelsResponse}, the responses in proto3 JSON.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "lumen/embeddings/v1/embeddings.grpc.pb.h"
#include "lumen/gateway/v1/gateway.grpc.pb.h"

namespace {

namespace common = lumen::common::v1;
namespace embeddings = lumen::embeddings::v1;
namespace gateway = lumen::gateway::v1;

// The gateway accepts messages up to 32 MiB; gRPC would refuse replies over 4 MiB.
constexpr int kMaxMessageBytes = 32 * 1024 * 1024;
constexpr auto kDeadline = std::chrono::seconds(30);

struct Options {
  std::string address;
  bool json = false;
  std::vector<std::string> texts;
};

// A context per call: deadline and, when set, the API key.
std::unique_ptr<grpc::ClientContext> NewContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + kDeadline);
  if (const char* key = std::getenv("LUMEN_API_KEY"); key != nullptr && *key != '\0') {
    context->AddMetadata("x-api-key", key);
  }
  return context;
}

// The vector's values, whichever encoding the server filled: packed
// little-endian float32 bytes (asked for below, cheaper) or repeated floats.
std::vector<float> Components(const common::Vector& vector) {
  if (vector.values_f32().empty()) return {vector.values().begin(), vector.values().end()};
  const std::string& raw = vector.values_f32();
  std::vector<float> out(raw.size() / 4);
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 3; b >= 0; --b) bits = (bits << 8) | static_cast<uint8_t>(raw[4 * i + b]);
    std::memcpy(&out[i], &bits, sizeof bits);
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out).ok()) throw std::runtime_error("JSON encoding failed");
  return out;
}

void PrintJson(const embeddings::EmbedResponse& embedded, const gateway::ListModelsResponse& models) {
  std::ostringstream vectors;
  vectors << '[';
  for (int i = 0; i < embedded.embeddings_size(); ++i) {
    vectors << (i ? ",[" : "[");
    const std::vector<float> values = Components(embedded.embeddings(i));
    char number[32];
    for (size_t j = 0; j < values.size(); ++j) {
      std::snprintf(number, sizeof number, "%.9g", values[j]);  // 9 digits: a float32 round-trips
      vectors << (j ? "," : "") << number;
    }
    vectors << ']';
  }
  vectors << ']';
  std::cout << R"({"embed":)" << ToJson(embedded) << R"(,"vectors":)" << vectors.str() << R"(,"models":)"
            << ToJson(models) << "}\n";
}

void PrintHuman(const Options& options, const embeddings::EmbedResponse& embedded,
                const gateway::ListModelsResponse& models) {
  const common::ModelInfo& model = embedded.model();
  std::printf("model %s v%s on %s\n", model.name().c_str(), model.version().c_str(), model.device().c_str());
  for (int i = 0; i < embedded.embeddings_size(); ++i) {
    const std::vector<float> values = Components(embedded.embeddings(i));
    double norm = 0;
    for (float x : values) norm += static_cast<double>(x) * x;
    std::printf("  \"%s\": %zu dims [", options.texts[i].substr(0, 40).c_str(), values.size());
    for (size_t j = 0; j < values.size() && j < 5; ++j) std::printf("%.4f, ", values[j]);
    std::printf("...] norm %.4f\n", std::sqrt(norm));
  }
  std::printf("%llu input tokens\n", static_cast<unsigned long long>(embedded.usage().input_tokens()));
  for (const common::ModelInfo& m : models.models()) {
    std::string state = common::ModelState_Name(m.state());
    state = state.substr(state.find("MODEL_STATE_") == 0 ? 12 : 0);
    std::printf("%-11s %-28s v%-4s %-20s %s\n", m.service().c_str(), m.name().c_str(), m.version().c_str(),
                m.task().c_str(), state.c_str());
  }
  for (const gateway::BackendStatus& b : models.backends()) {
    if (b.status().code() == 0) {
      std::printf("backend %s: OK\n", b.service().c_str());
    } else {
      std::printf("backend %s: code %d: %s\n", b.service().c_str(), b.status().code(), b.status().message().c_str());
    }
  }
}

bool ParseArgs(int argc, char** argv, Options* options) {
  const char* env_address = std::getenv("LUMEN_ADDRESS");
  options->address = env_address != nullptr && *env_address != '\0' ? env_address : "localhost:50051";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--address" && i + 1 < argc) {
      options->address = argv[++i];
    } else if (arg == "--json") {
      options->json = true;
    } else {
      options->texts.push_back(arg);
    }
  }
  return !options->texts.empty();
}

int Fail(const grpc::Status& status) {
  // A gRPC error carries its status code and message; print both and fail.
  std::cerr << "gRPC error " << status.error_code() << ": " << status.error_message() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, &options)) {
    std::cerr << "usage: lumen-client [--address HOST:PORT] [--json] TEXT...\n";
    return 2;
  }
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  arguments.SetMaxSendMessageSize(kMaxMessageBytes);
  // One channel for both services: they are served on the same gateway address.
  auto channel = grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), arguments);

  embeddings::EmbedRequest request;
  for (const std::string& text : options.texts) request.add_texts(text);
  request.set_encoding(common::VECTOR_ENCODING_F32_BYTES);
  embeddings::EmbedResponse embedded;
  grpc::Status status = embeddings::EmbeddingService::NewStub(channel)->Embed(NewContext().get(), request, &embedded);
  if (!status.ok()) return Fail(status);

  gateway::ListModelsResponse models;
  status = gateway::GatewayService::NewStub(channel)->ListModels(NewContext().get(), gateway::ListModelsRequest(),
                                                                  &models);
  if (!status.ok()) return Fail(status);

  if (options.json) {
    PrintJson(embedded, models);
  } else {
    PrintHuman(options, embedded, models);
  }
  return 0;
}
