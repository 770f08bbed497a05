// Early risk check: LibTorch carries a protobuf of its own inside libtorch_cpu; this process also
// links Debian's libprotobuf for our record and TensorBoard formats. Both must coexist: our
// messages serialise to the exact bytes of the wire format, reflection and the descriptor pool
// work, and torch keeps working in the same process.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/common.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "datasets/trajectory/trajectory.pb.h"

TEST(ProtobufWithTorch, RuntimeIsTheOneWeCompiledAgainst) {
  // Throws/aborts if the headers and the linked library disagree (a sign of a symbol clash).
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  SUCCEED();
}

TEST(ProtobufWithTorch, ExactWireBytes) {
  ebm::trajectory::Field field;
  field.set_name("qpos");
  field.set_size(3);
  const std::string bytes = field.SerializeAsString();
  // Field 1 (string, wire type 2): tag 0x0a, length 4, "qpos"; field 2 (varint): tag 0x10, 3.
  const std::string expected = std::string("\x0a\x04qpos\x10\x03", 8);
  EXPECT_EQ(bytes, expected);
}

TEST(ProtobufWithTorch, RoundTripPackedFloatsFromATensor) {
  auto frames = torch::linspace(-1.0, 1.0, 12, torch::kFloat32).reshape({4, 3});
  ebm::trajectory::Record record;
  auto* episode = record.mutable_episode();
  episode->set_episode_id(7);
  episode->set_num_frames(4);
  auto flat = frames.contiguous();
  episode->mutable_data()->Add(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
  std::string bytes;
  ASSERT_TRUE(record.SerializeToString(&bytes));

  ebm::trajectory::Record parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_TRUE(parsed.has_episode());
  ASSERT_EQ(parsed.episode().data_size(), 12);
  auto back = torch::from_blob(parsed.mutable_episode()->mutable_data()->mutable_data(), {4, 3},
                               torch::kFloat32)
                  .clone();
  EXPECT_TRUE(torch::equal(back, frames));
  EXPECT_EQ(parsed.episode().episode_id(), 7u);
}

TEST(ProtobufWithTorch, ReflectionSeesOurSchema) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  const auto* desc = pool->FindMessageTypeByName("ebm.trajectory.Episode");
  ASSERT_NE(desc, nullptr);
  ASSERT_NE(desc->FindFieldByName("data"), nullptr);
  EXPECT_TRUE(desc->FindFieldByName("data")->is_packed());
  // torch still computes after protobuf has been exercised.
  EXPECT_EQ(torch::ones({3}).sum().item<float>(), 3.0f);
}
