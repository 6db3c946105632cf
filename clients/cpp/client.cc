// Calls the lumen gateway from C++: sentence embeddings (EmbeddingService.Embed,
// forwarded by the gateway), the merged model list (GatewayService.ListModels,
// a fan-out to every backend) and, per text, the composite
// GatewayService.AnalyzeText (language, sentiment and embedding in parallel,
// each part with its own status).
//
//   lumen-client [--address HOST:PORT] [--json] TEXT...
//
// The address defaults to $LUMEN_ADDRESS or localhost:50051; an API key in
// $LUMEN_API_KEY is sent as "x-api-key". --json prints one JSON object for
// scripts and tests: {"embed": EmbedResponse, "vectors": decoded vectors,
// "models": ListModelsResponse, "analyze": [AnalyzeTextResponse per text],
// "analyze_vectors": [decoded embedding per text, [] when that part failed]},
// the responses in proto3 JSON.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "lumen/embeddings/v1/embeddings.grpc.pb.h"
#include "lumen/gateway/v1/gateway.grpc.pb.h"
#include "lumen/nlp/v1/nlp.pb.h"

namespace {

namespace common = lumen::common::v1;
namespace embeddings = lumen::embeddings::v1;
namespace gateway = lumen::gateway::v1;
namespace nlp = lumen::nlp::v1;

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

// A JSON array of a vector's values.
std::string JsonArray(const std::vector<float>& values) {
  std::ostringstream out;
  out << '[';
  char number[32];
  for (size_t j = 0; j < values.size(); ++j) {
    std::snprintf(number, sizeof number, "%.9g", values[j]);  // 9 digits: a float32 round-trips
    out << (j ? "," : "") << number;
  }
  out << ']';
  return out.str();
}

void PrintJson(const embeddings::EmbedResponse& embedded, const gateway::ListModelsResponse& models,
               const std::vector<gateway::AnalyzeTextResponse>& analyzed) {
  std::ostringstream vectors, analyses, analyze_vectors;
  for (int i = 0; i < embedded.embeddings_size(); ++i) {
    vectors << (i ? "," : "") << JsonArray(Components(embedded.embeddings(i)));
  }
  for (size_t i = 0; i < analyzed.size(); ++i) {
    analyses << (i ? "," : "") << ToJson(analyzed[i]);
    // An unset embedding decodes to no values: [] when that part failed.
    analyze_vectors << (i ? "," : "") << JsonArray(Components(analyzed[i].embedding().embedding()));
  }
  std::cout << R"({"embed":)" << ToJson(embedded) << R"(,"vectors":[)" << vectors.str() << R"(],"models":)"
            << ToJson(models) << R"(,"analyze":[)" << analyses.str() << R"(],"analyze_vectors":[)"
            << analyze_vectors.str() << "]}\n";
}

// A vector in one line: "384 dims [first five, ...] norm N".
std::string Describe(const std::vector<float>& values) {
  double norm = 0;
  for (float x : values) norm += static_cast<double>(x) * x;
  std::ostringstream out;
  out << values.size() << " dims [";
  char number[32];
  for (size_t j = 0; j < values.size() && j < 5; ++j) {
    std::snprintf(number, sizeof number, "%.4f, ", values[j]);
    out << number;
  }
  std::snprintf(number, sizeof number, "...] norm %.4f", std::sqrt(norm));
  return out.str() + number;
}

// One part's line: "OK <result> (<model> v<version>)" or "code N: <why it
// failed>"; a part the gateway did not return is missing.
template <typename Part>
void PrintPart(const char* name, bool present, const Part& part, const std::function<std::string()>& result) {
  if (!present) {
    std::printf("  %s: missing\n", name);
  } else if (part.status().code() != 0) {
    std::printf("  %s: code %d: %s\n", name, part.status().code(), part.status().message().c_str());
  } else {
    std::printf("  %s: OK %s (%s v%s)\n", name, result().c_str(), part.model().name().c_str(),
                part.model().version().c_str());
  }
}

void PrintAnalyses(const Options& options, const std::vector<gateway::AnalyzeTextResponse>& analyzed) {
  char number[32];
  for (size_t i = 0; i < analyzed.size(); ++i) {
    const gateway::AnalyzeTextResponse& r = analyzed[i];
    std::printf("analyze \"%s\"\n", options.texts[i].substr(0, 40).c_str());
    PrintPart("language", r.has_language(), r.language(), [&] {
      std::string scores;
      for (const nlp::LanguageScore& l : r.language().languages()) {
        std::snprintf(number, sizeof number, " %.4f", l.confidence());
        scores += (scores.empty() ? "" : ", ") + l.language_code() + number;
      }
      return scores;
    });
    PrintPart("sentiment", r.has_sentiment(), r.sentiment(), [&] {
      std::string label = nlp::SentimentLabel_Name(r.sentiment().label());
      label = label.substr(label.find("SENTIMENT_LABEL_") == 0 ? 16 : 0);
      std::snprintf(number, sizeof number, " %.4f", r.sentiment().score());
      return label + number;
    });
    PrintPart("embedding", r.has_embedding(), r.embedding(),
              [&] { return Describe(Components(r.embedding().embedding())); });
  }
}

void PrintHuman(const Options& options, const embeddings::EmbedResponse& embedded,
                const gateway::ListModelsResponse& models, const std::vector<gateway::AnalyzeTextResponse>& analyzed) {
  const common::ModelInfo& model = embedded.model();
  std::printf("model %s v%s on %s\n", model.name().c_str(), model.version().c_str(), model.device().c_str());
  for (int i = 0; i < embedded.embeddings_size(); ++i) {
    std::printf("  \"%s\": %s\n", options.texts[i].substr(0, 40).c_str(),
                Describe(Components(embedded.embeddings(i))).c_str());
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
  PrintAnalyses(options, analyzed);
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

  auto gateway_stub = gateway::GatewayService::NewStub(channel);
  gateway::ListModelsResponse models;
  status = gateway_stub->ListModels(NewContext().get(), gateway::ListModelsRequest(), &models);
  if (!status.ok()) return Fail(status);

  // AnalyzeText takes one text: one call per text, one after the other, so
  // each embedding is computed alone, as any single caller would get it.
  gateway::AnalyzeTextRequest analyze;
  for (gateway::TextFeatureType type : {gateway::TEXT_FEATURE_TYPE_LANGUAGE, gateway::TEXT_FEATURE_TYPE_SENTIMENT,
                                        gateway::TEXT_FEATURE_TYPE_EMBEDDING}) {
    analyze.add_features()->set_type(type);
  }
  analyze.set_embedding_encoding(common::VECTOR_ENCODING_F32_BYTES);
  std::vector<gateway::AnalyzeTextResponse> analyzed(options.texts.size());
  for (size_t i = 0; i < options.texts.size(); ++i) {
    analyze.set_text(options.texts[i]);
    status = gateway_stub->AnalyzeText(NewContext().get(), analyze, &analyzed[i]);
    if (!status.ok()) return Fail(status);
  }

  if (options.json) {
    PrintJson(embedded, models, analyzed);
  } else {
    PrintHuman(options, embedded, models, analyzed);
  }
  return 0;
}
