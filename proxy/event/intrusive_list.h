// A doubly linked list whose nodes live inside the listed objects, so linking and unlinking
// never allocate and an object can remove itself in O(1) (from its destructor, for example).
// Single-threaded.
#ifndef SLUICE_PROXY_EVENT_INTRUSIVE_LIST_H_
#define SLUICE_PROXY_EVENT_INTRUSIVE_LIST_H_

#include <cstddef>

namespace sluice {

class ListNode {
 public:
  ListNode() = default;
  ListNode(const ListNode&) = delete;
  ListNode& operator=(const ListNode&) = delete;
  ~ListNode() { Unlink(); }

  bool linked() const { return next_ != nullptr; }
  void Unlink() {
    if (!next_) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  template <typename T, ListNode T::*>
  friend class IntrusiveList;
  ListNode* prev_ = nullptr;
  ListNode* next_ = nullptr;
  // No pointer to the object that embeds it: the list knows where its node lies in a T (16 B
  // a node, not 24: an idle connection is in three lists, issue 24).
};

// T must have a ListNode member, named by Node. Does not own the objects.
template <typename T, ListNode T::*Node>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev_ = head_.next_ = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() {
    while (!empty()) (Front()->*Node).Unlink();
    head_.prev_ = head_.next_ = nullptr;
  }

  bool empty() const { return head_.next_ == &head_; }
  size_t size() const {
    size_t n = 0;
    for (const ListNode* p = head_.next_; p != &head_; p = p->next_) ++n;
    return n;
  }

  void PushBack(T* item) {
    ListNode* node = &(item->*Node);
    node->Unlink();
    offset_ = OffsetOf(item);
    node->prev_ = head_.prev_;
    node->next_ = &head_;
    head_.prev_->next_ = node;
    head_.prev_ = node;
  }
  void PushFront(T* item) {
    ListNode* node = &(item->*Node);
    node->Unlink();
    offset_ = OffsetOf(item);
    node->next_ = head_.next_;
    node->prev_ = &head_;
    head_.next_->prev_ = node;
    head_.next_ = node;
  }
  T* Front() const { return empty() ? nullptr : FromNode(head_.next_); }
  T* Back() const { return empty() ? nullptr : FromNode(head_.prev_); }
  T* PopFront() {
    T* item = Front();
    if (item) (item->*Node).Unlink();
    return item;
  }
  T* PopBack() {
    T* item = Back();
    if (item) (item->*Node).Unlink();
    return item;
  }
  // Calls fn(T*) for each item; fn may unlink the item it is given.
  template <typename Fn>
  void ForEach(Fn fn) {
    ListNode* p = head_.next_;
    while (p != &head_) {
      ListNode* next = p->next_;
      fn(FromNode(p));
      p = next;
    }
  }

 private:
  // Where Node lies in a T, taken from a real item (the same for every T).
  static size_t OffsetOf(T* item) {
    return static_cast<size_t>(reinterpret_cast<char*>(&(item->*Node)) -
                               reinterpret_cast<char*>(item));
  }
  // Only for a node that a push linked here (so offset_ is set).
  T* FromNode(const ListNode* node) const {
    return reinterpret_cast<T*>(const_cast<char*>(reinterpret_cast<const char*>(node)) - offset_);
  }
  ListNode head_;
  size_t offset_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_INTRUSIVE_LIST_H_
