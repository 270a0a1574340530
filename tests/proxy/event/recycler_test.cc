#include "proxy/event/recycler.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

struct Widget {
  char bytes[200];
  static void* operator new(size_t size) { return RecycledAllocation<Widget, 4>::New(size); }
  static void operator delete(void* p, size_t size) {
    RecycledAllocation<Widget, 4>::Delete(p, size);
  }
};

using WidgetBlocks = BlockRecycler<sizeof(Widget), 4>;

#ifndef SLUICE_RECYCLER_OFF
TEST(RecyclerTest, ABlockGivenBackIsTheNextOneTaken) {
  Widget* a = new Widget;
  delete a;
  EXPECT_EQ(WidgetBlocks::kept(), 1u);
  Widget* b = new Widget;
  EXPECT_EQ(static_cast<void*>(a), static_cast<void*>(b));
  EXPECT_EQ(WidgetBlocks::kept(), 0u);
  delete b;
}

TEST(RecyclerTest, KeepsAtMostItsBound) {
  std::vector<Widget*> widgets;
  for (int i = 0; i < 10; ++i) widgets.push_back(new Widget);
  for (Widget* w : widgets) delete w;
  EXPECT_EQ(WidgetBlocks::kept(), 4u);
  // Taken again: the four kept first, then fresh ones.
  widgets.clear();
  for (int i = 0; i < 6; ++i) widgets.push_back(new Widget);
  EXPECT_EQ(WidgetBlocks::kept(), 0u);
  for (Widget* w : widgets) delete w;
}

TEST(RecyclerTest, EachThreadHasItsOwnListAndFreesItAtExit) {
  Widget* from_main = new Widget;
  std::thread([from_main] {
    EXPECT_EQ(WidgetBlocks::kept(), 0u);
    delete from_main;  // freed on another thread: joins that thread's list
    EXPECT_EQ(WidgetBlocks::kept(), 1u);
    Widget* w = new Widget;
    EXPECT_EQ(static_cast<void*>(w), static_cast<void*>(from_main));
    delete w;
  }).join();  // the thread's list is freed as it exits (LeakSanitizer would say otherwise)
}
#endif

TEST(RecyclerTest, ObjectsWorkWhateverTheBuild) {
  std::vector<Widget*> widgets;
  for (int i = 0; i < 20; ++i) {
    widgets.push_back(new Widget);
    widgets.back()->bytes[0] = static_cast<char>(i);
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(widgets[i]->bytes[0], static_cast<char>(i));
  for (Widget* w : widgets) delete w;
}

}  // namespace
}  // namespace sluice
