// Pages and the roles whose work each one is. The menu shows a user only the pages of their roles; the
// gateway decides what each page's calls may see, and a page it refuses says so.
import { createRouter, createWebHistory } from 'vue-router'

const DEPT = ['dept_admin', 'dept_reviewer', 'dept_system']

export const PAGES = [
  { path: '/', name: 'home', title: '首页', group: '', roles: null, component: () => import('./pages/Home.vue') },
  // 平台管理机构
  { path: '/platform/dashboard', name: 'dashboard', title: '运行总览', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/Dashboard.vue') },
  { path: '/platform/review', name: 'review', title: '目录审核', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/ReviewQueue.vue') },
  { path: '/platform/coordination', name: 'coordination', title: '协调工作台', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/Worklist.vue') },
  { path: '/platform/departments', name: 'departments', title: '部门与接入备案', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/Departments.vue') },
  { path: '/platform/users', name: 'users', title: '用户', group: '平台管理', roles: ['platform_admin', 'dept_admin'], component: () => import('./pages/Users.vue') },
  { path: '/platform/clients', name: 'clients', title: '机器客户端', group: '平台管理', roles: ['platform_admin', 'dept_admin'], component: () => import('./pages/Clients.vue') },
  { path: '/platform/calendar', name: 'calendar', title: '工作日历', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/Calendar.vue') },
  { path: '/platform/profile', name: 'profile', title: '辖区规则配置', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/Profile.vue') },
  { path: '/platform/services', name: 'services', title: '服务、前置机与级联', group: '平台管理', roles: ['platform_admin'], component: () => import('./pages/Services.vue') },
  // 部门管理员
  { path: '/dept/catalog', name: 'my-catalog', title: '本部门目录', group: '部门资源', roles: ['dept_admin'], component: () => import('./pages/MyCatalog.vue') },
  { path: '/dept/library', name: 'library', title: '托管数据库', group: '部门资源', roles: ['dept_admin', 'dept_system'], component: () => import('./pages/Library.vue') },
  { path: '/dept/batches', name: 'batches', title: '数据批次', group: '部门资源', roles: ['dept_admin', 'dept_system'], component: () => import('./pages/Batches.vue') },
  { path: '/dept/subscriptions', name: 'subscriptions', title: '我的订阅', group: '部门资源', roles: DEPT, component: () => import('./pages/Subscriptions.vue') },
  { path: '/dept/connector', name: 'connector', title: '本部门前置机', group: '部门资源', roles: ['dept_admin'], component: () => import('./pages/Connector.vue') },
  // 部门审核员
  { path: '/review/worklist', name: 'worklist', title: '待办审核', group: '共享审核', roles: ['dept_reviewer', 'dept_admin'], component: () => import('./pages/Worklist.vue') },
  { path: '/review/open-data-demands', name: 'open-data-demands', title: '开放需求', group: '共享审核', roles: ['dept_reviewer', 'dept_admin', 'platform_admin', 'auditor'], feature: 'open_data', component: () => import('./pages/OpenDataDemands.vue') },
  { path: '/review/grants', name: 'issued-grants', title: '已发授权', group: '共享审核', roles: ['dept_reviewer', 'dept_admin'], component: () => import('./pages/Grants.vue'), props: { role: 'provider' } },
  // 使用部门
  { path: '/use/catalog', name: 'search', title: '目录检索', group: '共享使用', roles: [...DEPT, 'platform_admin', 'auditor'], component: () => import('./pages/CatalogSearch.vue') },
  { path: '/use/requests', name: 'my-requests', title: '共享申请', group: '共享使用', roles: [...DEPT, 'platform_admin', 'auditor'], component: () => import('./pages/Requests.vue') },
  { path: '/use/grants', name: 'my-grants', title: '我的授权', group: '共享使用', roles: DEPT, component: () => import('./pages/Grants.vue'), props: { role: 'consumer' } },
  { path: '/use/query', name: 'query', title: '在线查询', group: '共享使用', roles: DEPT, component: () => import('./pages/Query.vue') },
  { path: '/use/disputes', name: 'disputes', title: '数据异议', group: '共享使用', roles: [...DEPT, 'platform_admin'], component: () => import('./pages/Disputes.vue') },
  // 审计
  { path: '/audit/log', name: 'audit-log', title: '审计日志', group: '审计监督', roles: ['auditor'], component: () => import('./pages/AuditLog.vue') },
  { path: '/audit/trace', name: 'trace', title: '按身份追溯', group: '审计监督', roles: ['auditor'], component: () => import('./pages/Trace.vue') },
  { path: '/audit/verify', name: 'verify', title: '日志链校验', group: '审计监督', roles: ['auditor'], component: () => import('./pages/Verify.vue') },
  { path: '/audit/evaluation', name: 'evaluation', title: '考核评价', group: '审计监督', roles: ['auditor', 'platform_admin', 'dept_admin'], component: () => import('./pages/Evaluation.vue') },
  { path: '/audit/notices', name: 'notices', title: '整改通知', group: '审计监督', roles: ['auditor', 'platform_admin', 'dept_admin'], component: () => import('./pages/Notices.vue') },
  { path: '/audit/complaints', name: 'complaints', title: '投诉', group: '审计监督', roles: ['auditor', 'platform_admin', 'dept_admin'], feature: 'complaints', component: () => import('./pages/Complaints.vue') },
]

export const router = createRouter({
  history: createWebHistory('/console/'),
  routes: [
    ...PAGES.map((p) => ({ path: p.path, name: p.name, component: p.component, props: p.props, meta: { title: p.title } })),
    { path: '/requests/:id', name: 'request', component: () => import('./pages/RequestDetail.vue'), props: true, meta: { title: '申请详情' } },
    { path: '/:rest(.*)*', name: 'missing', component: () => import('./pages/Missing.vue'), meta: { title: '页面不存在' } },
  ],
})

router.afterEach((to) => {
  document.title = `${to.meta.title || ''} · 政务信息资源共享交换平台`
})
