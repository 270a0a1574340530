#include "proxy/event/intrusive_list.h"

#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

struct Item {
  int value;
  ListNode node;
};
using List = IntrusiveList<Item, &Item::node>;

std::vector<int> Values(List& list) {
  std::vector<int> out;
  list.ForEach([&](Item* item) { out.push_back(item->value); });
  return out;
}

TEST(IntrusiveListTest, PushPopAndSelfRemoval) {
  List list;
  Item a{1, {}}, b{2, {}}, c{3, {}};
  list.PushBack(&a);
  list.PushBack(&b);
  list.PushFront(&c);
  EXPECT_EQ(Values(list), (std::vector<int>{3, 1, 2}));
  b.node.Unlink();
  EXPECT_EQ(Values(list), (std::vector<int>{3, 1}));
  EXPECT_EQ(list.PopBack(), &a);
  EXPECT_EQ(list.PopFront(), &c);
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.PopFront(), nullptr);
}

TEST(IntrusiveListTest, DestroyedItemLeavesTheList) {
  List list;
  Item a{1, {}};
  {
    Item gone{2, {}};
    list.PushBack(&gone);
    list.PushBack(&a);
  }
  EXPECT_EQ(Values(list), (std::vector<int>{1}));
  EXPECT_EQ(list.size(), 1u);
}

TEST(IntrusiveListTest, ForEachToleratesUnlinkingTheCurrentItem) {
  List list;
  Item items[4] = {{0, {}}, {1, {}}, {2, {}}, {3, {}}};
  for (Item& i : items) list.PushBack(&i);
  list.ForEach([](Item* item) {
    if (item->value % 2 == 0) item->node.Unlink();
  });
  EXPECT_EQ(Values(list), (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace sluice
